/* cmd_replay.c -- `funnelstream replay`: a finite file through the engine.
 *
 * Reads --input (a path or - for stdin), writes one JSON record per line to
 * --output (default stdout), logs a summary line to stderr. On a terminal
 * it shows a progress line (events/s, MB/s, % of the file, ETA) unless --quiet.
 * Records are flushed after each engine step that wrote any, so the records
 * of closed windows are out of the process as the windows close.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "replay.h"
#include "util.h"

static const char usage[] =
    "Usage: funnelstream replay --config FILE --input FILE|- [options]\n"
    "\n"
    "Runs the funnel engine over a finite file of touchpoint events and writes\n"
    "the windowed funnel metrics as JSON lines (one record per line).\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE          YAML config (funnels, windows)\n"
    "  -i, --input FILE|-         events: concatenated MessagePack or JSON lines; - is stdin\n"
    "  -o, --output FILE|-        where records go (default: stdout)\n"
    "  -t, --threads N            worker threads (default: config `threads`, else cores)\n"
    "  -f, --format msgpack|json  input encoding (default: from the file name, else\n"
    "                             the config's input.format)\n"
    "  -q, --quiet                no progress line\n"
    "      --log-level LEVEL      debug|info|warn|error (default info)\n"
    "  -h, --help                 this text\n"
    "\n"
    "Exit status: 0 done, 1 I/O error, 2 bad arguments or config.\n";

typedef struct file_output {
    FILE *f;
    bool unflushed; /* records written since the last step's flush */
} file_output;

static int write_line(void *ctx, const char *key, size_t key_len, const char *value, size_t len)
{
    (void)key;
    (void)key_len;
    file_output *o = ctx;
    o->unflushed = true;
    if (fwrite(value, 1, len, o->f) != len || fputc('\n', o->f) == EOF)
        return -1;
    return 0;
}

/* After each engine step (sink thread): the records it wrote -- windows
 * that closed -- leave the stdio buffer now, so that a process that dies
 * later (out of memory, a signal) has not taken closed windows' records
 * with it, and a reader of a pipe sees them as the windows close. At most
 * one write per step, and none for steps without records. A write error
 * shows in ferror, which the end checks. */
static void flush_step(void *ctx, const fs_step_info *info)
{
    (void)info;
    file_output *o = ctx;
    if (o->unflushed) {
        o->unflushed = false;
        fflush(o->f);
    }
}

typedef struct progress {
    fs_engine *engine;
    uint64_t total_bytes; /* 0 when unknown (stdin) */
    uint64_t bytes_read;
    uint64_t start_ns, last_ns;
    bool enabled;
} progress;

static void show_progress(void *ctx, uint64_t bytes)
{
    progress *p = ctx;
    p->bytes_read = bytes;
    uint64_t now = fs_now_ns();
    if (!p->enabled || now - p->last_ns < 500000000u)
        return;
    p->last_ns = now;
    double secs = (double)(now - p->start_ns) / 1e9;
    double events = (double)fs_engine_messages_done(p->engine);
    fprintf(stderr, "\r%.0f events  %.2fM events/s  %.1f MB/s", events, events / secs / 1e6,
            (double)bytes / secs / 1e6);
    if (p->total_bytes) {
        double frac = (double)bytes / (double)p->total_bytes;
        fprintf(stderr, "  %5.1f%%  ETA %.0fs ", 100 * frac, frac > 0 ? secs / frac - secs : 0);
    }
    fflush(stderr);
}

typedef struct replay_args {
    const char *config, *input, *output, *format;
    long threads;
    bool quiet;
} replay_args;

static int parse_args(int argc, char **argv, replay_args *a)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"input", required_argument, NULL, 'i'},
                                         {"output", required_argument, NULL, 'o'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"log-level", required_argument, NULL, 'L'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:i:o:t:f:qh", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'c':
            a->config = optarg;
            break;
        case 'i':
            a->input = optarg;
            break;
        case 'o':
            a->output = optarg;
            break;
        case 'f':
            a->format = optarg;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 't':
            rc = fs_cli_long("replay", "--threads", optarg, 1, 1024, &a->threads);
            break;
        case 'L':
            rc = fs_cli_log_level("replay", optarg);
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
    if (fs_cli_no_extra("replay", argc, argv, optind))
        return 2;
    if (!a->config || !a->input) {
        fprintf(stderr, "funnelstream replay: --%s is required (see --help)\n",
                a->config ? "input" : "config");
        return 2;
    }
    return -1;
}

static int choose_format(const replay_args *a, const fs_config *cfg)
{
    if (a->format) {
        if (!strcmp(a->format, "msgpack"))
            return FS_FORMAT_MSGPACK;
        if (!strcmp(a->format, "json"))
            return FS_FORMAT_JSON;
        fprintf(stderr, "funnelstream replay: --format: '%s' is not msgpack or json\n", a->format);
        return -1;
    }
    int fmt = strcmp(a->input, "-") ? fs_format_from_path(a->input) : -1;
    return fmt >= 0 ? fmt : (int)cfg->input_format;
}

/* Whether the output (a path, or stdout for "-"/NULL) is the very file the
 * input fd reads: same device and inode, so "./F", a symlink or a hard link
 * count too. fopen(.., "w") would truncate the input before it is read (and
 * stdout appending to it would feed the replay its own records). Only
 * regular files: /dev/null or a terminal as both is harmless. */
static bool output_is_input(int in_fd, const char *output)
{
    struct stat in, out;
    if (fstat(in_fd, &in) != 0 || !S_ISREG(in.st_mode))
        return false;
    int rc = output && strcmp(output, "-") ? stat(output, &out) : fstat(STDOUT_FILENO, &out);
    return rc == 0 && S_ISREG(out.st_mode) && in.st_dev == out.st_dev && in.st_ino == out.st_ino;
}

static long max_rss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static void log_summary(const fs_engine_stats *st, double secs, uint64_t bytes, uint32_t threads)
{
    fs_log(FS_LOG_INFO, "replay finished",
           "events=%" PRIu64 " valid=%" PRIu64 " rejected=%" PRIu64 " late=%" PRIu64
           " journeys_started=%" PRIu64 " completed=%" PRIu64 " abandoned=%" PRIu64
           " excluded=%" PRIu64 " refused=%" PRIu64 " evicted=%" PRIu64
           " peak_active_journeys=%" PRIu64 " flow_records=%" PRIu64 " cohort_records=%" PRIu64
           " partials=%" PRIu64 " partial_bytes=%" PRIu64
           " threads=%u seconds=%.3f events_per_sec=%.0f"
           " mb_per_sec=%.1f max_rss_kb=%ld worker_cpu_s=%.3f busiest_worker_cpu_s=%.3f",
           st->messages, st->valid, st->rejected, st->late_events, st->journeys_started,
           st->journeys_completed, st->journeys_abandoned, st->journeys_excluded,
           st->journeys_refused, st->journeys_evicted, st->journeys_active_peak, st->flow_records,
           st->cohort_records, st->partials, st->partial_bytes, threads, secs,
           secs > 0 ? (double)st->messages / secs : 0, secs > 0 ? (double)bytes / secs / 1e6 : 0,
           max_rss_kb(), (double)st->worker_cpu_ns / 1e9, (double)st->worker_cpu_ns_max / 1e9);
    for (int r = 1; r < FS_REJECT_COUNT; r++)
        if (st->rejected_by[r])
            fs_log(FS_LOG_INFO, "rejected events", "reason=%s count=%" PRIu64,
                   fs_reject_name((fs_reject)r), st->rejected_by[r]);
}

int fs_cmd_replay(int argc, char **argv)
{
    replay_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    char err[512];
    fs_config *cfg = fs_config_load(a.config, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "funnelstream replay: %s\n", err);
        return 2;
    }
    int format = choose_format(&a, cfg);
    int fd = strcmp(a.input, "-") ? open(a.input, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    if (fd >= 0 && output_is_input(fd, a.output)) {
        fprintf(stderr,
                "funnelstream replay: the output %s is the input file %s: refusing to write "
                "records into the file being read\n",
                a.output && strcmp(a.output, "-") ? a.output : "(stdout)",
                strcmp(a.input, "-") ? a.input : "(stdin)");
        if (fd != STDIN_FILENO)
            close(fd);
        fs_config_free(cfg);
        return 2;
    }
    FILE *out = a.output && strcmp(a.output, "-") ? fopen(a.output, "w") : stdout;
    if (format < 0 || fd < 0 || !out) {
        if (fd < 0)
            fprintf(stderr, "funnelstream replay: %s: %s\n", a.input, strerror(errno));
        else if (!out)
            fprintf(stderr, "funnelstream replay: %s: %s\n", a.output, strerror(errno));
        fs_config_free(cfg);
        return format < 0 ? 2 : 1;
    }
    static char outbuf[1 << 16];
    setvbuf(out, outbuf, _IOFBF, sizeof(outbuf));

    uint32_t threads = a.threads ? (uint32_t)a.threads : fs_config_threads(cfg);
    file_output fo = {out, false};
    fs_engine *e = fs_engine_new(
        cfg, threads,
        (fs_output){
            .write = write_line, .ctx = &fo, .format = FS_FORMAT_JSON, .step_done = flush_step});
    struct stat sb;
    progress p = {.engine = e,
                  .total_bytes =
                      fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0,
                  .start_ns = fs_now_ns(),
                  .enabled = !a.quiet && isatty(STDERR_FILENO)};
    p.last_ns = p.start_ns;
    int feed_rc = fs_replay_feed(e, fd, (fs_format)format, true, show_progress, &p);
    int feed_errno = errno;
    fs_engine_join(e);
    double secs = (double)(fs_now_ns() - p.start_ns) / 1e9;
    if (p.enabled)
        fputs("\r\033[K", stderr);
    fs_engine_stats st = fs_engine_get_stats(e);
    rc = 0;
    if (feed_rc != 0) {
        fprintf(stderr, "funnelstream replay: %s: read error: %s\n", a.input, strerror(feed_errno));
        rc = 1;
    }
    if (fflush(out) != 0 || st.write_errors || ferror(out)) {
        fprintf(stderr, "funnelstream replay: %s: write error\n", a.output ? a.output : "stdout");
        rc = 1;
    }
    log_summary(&st, secs, p.bytes_read, threads);
    fs_engine_free(e);
    if (out != stdout)
        fclose(out);
    if (fd != STDIN_FILENO)
        close(fd);
    fs_config_free(cfg);
    return rc;
}
