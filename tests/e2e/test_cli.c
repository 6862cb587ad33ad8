/* test_cli.c -- the command line of the real binary (SPEC §6, README
 * "Commands"): help texts, exit statuses (0 ok, 1 I/O, 2 arguments/config),
 * error messages that name the file, line or flag at fault, stdin/--output
 * equivalence, and the determinism of `generate`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"

static const char good_cfg[] = "window: {size: 1m, max_out_of_orderness: 0}\n"
                               "funnels:\n"
                               "  - name: f\n"
                               "    conversion_window: 2m\n"
                               "    stages:\n"
                               "      - {name: s0, events: [a0]}\n"
                               "      - {name: s1, events: [a1]}\n"
                               "      - {name: s2, events: [a2]}\n";

static const fs_e2e_event some_events[] = {
    {"c1", 1000, "a0", "search", "b2b", NULL}, {"c2", 2000, "a1", "email", "b2c", NULL},
    {"c1", 3000, "a1", "social", "b2b", NULL}, {"c1", 70000, "a2", "email", "b2b", "9.5"},
    {"c3", 200000, "a0", "app", NULL, NULL},
};
#define N_SOME (sizeof(some_events) / sizeof(some_events[0]))

#define assert_status(run, want)                                                                   \
    do {                                                                                           \
        if ((run)->status != (want))                                                               \
            print_error("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s\n", (run)->status,      \
                        (want), (run)->out, (run)->err);                                           \
        assert_int_equal((run)->status, (want));                                                   \
    } while (0)

/* ---- help and usage errors ---- */

static void check_help(const char *const *args)
{
    fs_e2e_run r;
    fs_e2e_exec(&r, NULL, 0, args);
    assert_status(&r, 0);
    assert_contains(r.out, "Usage: funnelstream", "stdout");
    assert_string_equal(r.err, "");
    fs_e2e_run_free(&r);
}

static void test_help(void **state)
{
    (void)state;
    check_help((const char *const[]){"--help", NULL});
    check_help((const char *const[]){"replay", "--help", NULL});
    check_help((const char *const[]){"generate", "--help", NULL});

    /* The subcommand help texts name their own options. */
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--help");
    assert_contains(r.out, "--config", "replay --help");
    assert_contains(r.out, "--input", "replay --help");
    fs_e2e_run_free(&r);
    FS_E2E_EXEC(&r, NULL, 0, "generate", "--help");
    assert_contains(r.out, "--events", "generate --help");
    assert_contains(r.out, "--seed", "generate --help");
    fs_e2e_run_free(&r);
}

static void test_unknown_command_and_flags(void **state)
{
    (void)state;
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "frobnicate");
    assert_status(&r, 2);
    assert_contains(r.err, "frobnicate", "stderr");
    assert_string_equal(r.out, "");
    fs_e2e_run_free(&r);

    FS_E2E_EXEC(&r, NULL, 0, "replay", "--bogus-flag");
    assert_status(&r, 2);
    assert_contains(r.err, "bogus-flag", "stderr");
    assert_string_equal(r.out, "");
    fs_e2e_run_free(&r);

    FS_E2E_EXEC(&r, NULL, 0, "generate", "--events", "10", "--customers", "2", "--bogus-flag");
    assert_status(&r, 2);
    assert_contains(r.err, "bogus-flag", "stderr");
    assert_string_equal(r.out, "");
    fs_e2e_run_free(&r);

    /* No command at all: usage on stderr, 2. */
    fs_e2e_exec(&r, NULL, 0, (const char *const[]){NULL});
    assert_status(&r, 2);
    assert_contains(r.err, "Usage", "stderr");
    fs_e2e_run_free(&r);
}

static void test_missing_required_options(void **state)
{
    (void)state;
    char *in = fs_e2e_jsonl(some_events, N_SOME);
    char *in_path = fs_e2e_write_text(".jsonl", in);
    char *cfg_path = fs_e2e_write_text(".yaml", good_cfg);
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--input", in_path);
    assert_status(&r, 2);
    assert_contains(r.err, "--config", "stderr");
    fs_e2e_run_free(&r);
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--config", cfg_path);
    assert_status(&r, 2);
    assert_contains(r.err, "--input", "stderr");
    fs_e2e_run_free(&r);
    /* generate needs --events and --customers */
    FS_E2E_EXEC(&r, NULL, 0, "generate", "--customers", "5");
    assert_status(&r, 2);
    assert_contains(r.err, "--events", "stderr");
    fs_e2e_run_free(&r);
    /* a bad value names the flag */
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--config", cfg_path, "--input", in_path, "--threads",
                "zero");
    assert_status(&r, 2);
    assert_contains(r.err, "--threads", "stderr");
    fs_e2e_run_free(&r);
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--config", cfg_path, "--input", in_path, "--format", "xml");
    assert_status(&r, 2);
    assert_contains(r.err, "--format", "stderr");
    fs_e2e_run_free(&r);
    free(in);
    free(in_path);
    free(cfg_path);
}

/* ---- config errors ---- */

/* Runs replay with config text; expects exit 2 and "<path>:<line>:" followed
 * by a message containing needle on stderr. */
static void check_config_error(const char *yaml, int line, const char *needle)
{
    char *cfg_path = fs_e2e_write_text(".yaml", yaml);
    char *in_path = fs_e2e_write_text(".jsonl", "");
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--config", cfg_path, "--input", in_path);
    assert_status(&r, 2);
    char where[512];
    snprintf(where, sizeof(where), "%s:%d:", cfg_path, line);
    assert_contains(r.err, where, "stderr");
    /* the needle must be in the message itself, not in the random path */
    assert_contains(strstr(r.err, where) + strlen(where), needle, "stderr message");
    assert_string_equal(r.out, "");
    fs_e2e_run_free(&r);
    free(cfg_path);
    free(in_path);
}

static void test_config_errors(void **state)
{
    (void)state;
    /* an unknown key, on line 7 */
    check_config_error("window: {size: 1m}\n"
                       "funnels:\n"
                       "  - name: f\n"
                       "    stages:\n"
                       "      - {name: s0, events: [a0]}\n"
                       "      - {name: s1, events: [a1]}\n"
                       "    colour: red\n",
                       7, "colour");
    /* a typo inside window, line 1 */
    check_config_error("window: {size: 1m, sise: 2m}\n"
                       "funnels:\n"
                       "  - name: f\n"
                       "    stages:\n"
                       "      - {name: s0, events: [a0]}\n"
                       "      - {name: s1, events: [a1]}\n",
                       1, "sise");
    /* the same event type in two stages: the second one, line 7 */
    check_config_error("window: {size: 1m}\n"
                       "funnels:\n"
                       "  - name: f\n"
                       "    stages:\n"
                       "      - name: s0\n"
                       "        events: [a0, a1]\n"
                       "      - {name: s1, events: [a2, a0]}\n",
                       7, "'a0'");
    /* hop that does not divide size, line 4 (the hop: key) */
    check_config_error("funnels: [{name: f, stages: [{name: s0, events: [a0]}, "
                       "{name: s1, events: [a1]}]}]\n"
                       "window:\n"
                       "  size: 1m\n"
                       "  hop: 7s\n",
                       4, "hop");
    /* an exclude type that is also a stage event, line 5 */
    check_config_error("funnels:\n"
                       "  - name: f\n"
                       "    stages: [{name: s0, events: [a0]}, {name: s1, events: [a1]}]\n"
                       "    exclude:\n"
                       "      - a1\n",
                       5, "'a1'");
}

/* YAML bounds are config errors too: an alias bomb, at the alias. */
static void test_config_bounds(void **state)
{
    (void)state;
    check_config_error("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                       "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n",
                       5, "alias '*d' expands the config to more than 50000 YAML nodes");
}

/* A kafka: property librdkafka refuses is a config error of `run` (and of
 * `demo --config`): exit 2, the property named, before any client starts
 * (it was exit 1, from the consumer's creation). The broker address is
 * never dialled. */
static void test_run_bad_kafka_property(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"no.such.property: 1", "kafka.no.such.property: No such configuration property"},
        {"session.timeout.ms: soon", "kafka.session.timeout.ms: Invalid value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 "kafka:\n  bootstrap.servers: 127.0.0.1:1\n  %s\n"
                 "http: {listen: '127.0.0.1:0'}\n%s",
                 bad[i][0], strstr(good_cfg, "funnels:"));
        char *cfg_path = fs_e2e_write_text(".yaml", yaml);
        fs_e2e_run r;
        FS_E2E_EXEC(&r, NULL, 0, "run", "--config", cfg_path, "--until-eof");
        assert_status(&r, 2);
        assert_contains(r.err, cfg_path, "stderr");
        assert_contains(r.err, bad[i][1], "stderr");
        assert_string_equal(r.out, "");
        fs_e2e_run_free(&r);
        /* demo --config too, before its broker starts */
        FS_E2E_EXEC(&r, NULL, 0, "demo", "--config", cfg_path);
        assert_status(&r, 2);
        assert_contains(r.err, bad[i][1], "stderr");
        fs_e2e_run_free(&r);
        free(cfg_path);
    }
}

static void test_config_file_missing(void **state)
{
    (void)state;
    char *in_path = fs_e2e_write_text(".jsonl", "");
    const char *cfg = "/nonexistent-dir/funnelstream-e2e.yaml";
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--config", cfg, "--input", in_path);
    assert_true(r.status == 1 || r.status == 2);
    assert_contains(r.err, cfg, "stderr");
    fs_e2e_run_free(&r);
    free(in_path);
}

/* ---- inputs and outputs ---- */

static void test_input_missing(void **state)
{
    (void)state;
    char *cfg_path = fs_e2e_write_text(".yaml", good_cfg);
    const char *in = "/nonexistent-dir/events.jsonl";
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--config", cfg_path, "--input", in);
    assert_status(&r, 1);
    assert_contains(r.err, in, "stderr");
    assert_string_equal(r.out, "");
    fs_e2e_run_free(&r);
    free(cfg_path);
}

static void test_stdin_equals_file_and_output_file_equals_stdout(void **state)
{
    (void)state;
    char *in = fs_e2e_jsonl(some_events, N_SOME);
    char *in_path = fs_e2e_write_text(".jsonl", in);
    char *cfg_path = fs_e2e_write_text(".yaml", good_cfg);

    fs_e2e_run from_file, from_stdin, to_file;
    FS_E2E_EXEC(&from_file, NULL, 0, "replay", "--quiet", "--config", cfg_path, "--input", in_path,
                "--threads", "2");
    assert_status(&from_file, 0);
    assert_true(from_file.out_len > 0);
    assert_int_equal(fs_e2e_count_records(from_file.out, "flow", "f"),
                     5); /* T0, +1M, +2M, +3M, +5M */

    FS_E2E_EXEC(&from_stdin, in, strlen(in), "replay", "--quiet", "--config", cfg_path, "--input",
                "-", "--format", "json", "--threads", "2");
    assert_status(&from_stdin, 0);
    assert_string_equal(from_stdin.out, from_file.out);

    /* --output FILE: nothing on stdout, the file holds the same bytes. */
    char *out_path = fs_e2e_write_text(".out.jsonl", "stale content to be replaced\n");
    FS_E2E_EXEC(&to_file, NULL, 0, "replay", "--quiet", "--config", cfg_path, "--input", in_path,
                "--output", out_path, "--threads", "2");
    assert_status(&to_file, 0);
    assert_string_equal(to_file.out, "");
    FILE *f = fopen(out_path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, from_file.out_len + 64);
    size_t got = fread(buf, 1, from_file.out_len + 63, f);
    fclose(f);
    assert_int_equal(got, from_file.out_len);
    assert_memory_equal(buf, from_file.out, got);

    /* --output - is stdout. */
    fs_e2e_run dash;
    FS_E2E_EXEC(&dash, NULL, 0, "replay", "--quiet", "--config", cfg_path, "--input", in_path,
                "--output", "-", "--threads", "2");
    assert_status(&dash, 0);
    assert_string_equal(dash.out, from_file.out);

    /* The summary line goes to stderr, never into the records. */
    assert_contains(from_file.err, "replay finished", "stderr");

    fs_e2e_run_free(&dash);
    free(buf);
    fs_e2e_run_free(&from_file);
    fs_e2e_run_free(&from_stdin);
    fs_e2e_run_free(&to_file);
    free(in);
    free(in_path);
    free(cfg_path);
    free(out_path);
}

static void test_msgpack_equals_json_and_threads_agree(void **state)
{
    (void)state;
    char *in = fs_e2e_jsonl(some_events, N_SOME);
    size_t mp_len;
    char *mp = fs_e2e_msgpack(some_events, N_SOME, &mp_len);
    char *json_path = fs_e2e_write_text(".jsonl", in);
    char *mp_path = fs_e2e_write_file(".msgpack", mp, mp_len);
    char *a = fs_e2e_replay_file_at(good_cfg, json_path, 1, __FILE__, __LINE__);
    char *b = fs_e2e_replay_file_at(good_cfg, mp_path, 1, __FILE__, __LINE__);
    char *c = fs_e2e_replay_file_at(good_cfg, mp_path, 4, __FILE__, __LINE__);
    /* README: byte-identical for any --threads; and the input encoding does
     * not matter. */
    assert_string_equal(a, b);
    assert_string_equal(b, c);
    /* msgpack from stdin needs --format (or the config's input.format). */
    fs_e2e_run r;
    char *cfg_path = fs_e2e_write_text(".yaml", good_cfg);
    FS_E2E_EXEC(&r, mp, mp_len, "replay", "--quiet", "--config", cfg_path, "--input", "-",
                "--format", "msgpack", "--threads", "1");
    assert_status(&r, 0);
    assert_string_equal(r.out, a);
    fs_e2e_run_free(&r);
    free(cfg_path);
    free(a);
    free(b);
    free(c);
    free(in);
    free(mp);
    free(json_path);
    free(mp_path);
}

/* A file is mapped and cut into views, a pipe is read into buffers
 * (src/core/replay.c): both must frame a damaged stream the same way, in
 * the records and in the rejection counts of the summary line. */
static void expect_file_equals_stdin(const char *data, size_t len, const char *suffix,
                                     const char *format)
{
    char *path = fs_e2e_write_file(suffix, data, len);
    char *cfg_path = fs_e2e_write_text(".yaml", good_cfg);
    fs_e2e_run from_file, from_stdin;
    FS_E2E_EXEC(&from_file, NULL, 0, "replay", "--config", cfg_path, "--input", path, "--threads",
                "2");
    FS_E2E_EXEC(&from_stdin, data, len, "replay", "--config", cfg_path, "--input", "-", "--format",
                format, "--threads", "2");
    assert_status(&from_file, 0);
    assert_status(&from_stdin, 0);
    assert_string_equal(from_stdin.out, from_file.out);
    const char *counts[] = {" events=", " valid=", " rejected="};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        const char *x = strstr(from_file.err, counts[i]), *y = strstr(from_stdin.err, counts[i]);
        assert_non_null(x);
        assert_non_null(y);
        assert_int_equal(strtoll(x + strlen(counts[i]), NULL, 10),
                         strtoll(y + strlen(counts[i]), NULL, 10));
    }
    assert_contains(from_file.err, " rejected=3 ", "summary of the damaged stream");
    fs_e2e_run_free(&from_file);
    fs_e2e_run_free(&from_stdin);
    free(path);
    free(cfg_path);
}

static void test_damaged_file_equals_damaged_stdin(void **state)
{
    (void)state;
    size_t mp_len;
    char *mp = fs_e2e_msgpack(some_events, N_SOME, &mp_len);
    /* a byte that cannot start an object, the events, a non-map, and an
     * object cut short by the end of the input */
    size_t len = 1 + mp_len + 1 + 3;
    char *damaged = malloc(len);
    assert_non_null(damaged);
    damaged[0] = (char)0xc1;
    memcpy(damaged + 1, mp, mp_len);
    memcpy(damaged + 1 + mp_len, "\x01\x82\xa1\x61", 4);
    expect_file_equals_stdin(damaged, len, ".msgpack", "msgpack");

    char *js = fs_e2e_jsonl(some_events, N_SOME);
    size_t js_len = strlen(js);
    char *text = malloc(js_len + 64);
    assert_non_null(text);
    int n = snprintf(text, js_len + 64, "\n  \nnot json\n%s[1]\n{\"customer_id\": \"c", js);
    expect_file_equals_stdin(text, (size_t)n, ".jsonl", "json");
    free(text);
    free(js);
    free(damaged);
    free(mp);
}

/* ---- generate ---- */

static char *generate(const char *seed, const char *format)
{
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "generate", "--events", "300", "--customers", "40", "--seed", seed,
                "--format", format);
    assert_status(&r, 0);
    assert_true(r.out_len > 0);
    free(r.err);
    return r.out;
}

static void test_generate_deterministic(void **state)
{
    (void)state;
    char *a = generate("7", "json"), *b = generate("7", "json"), *c = generate("8", "json");
    assert_string_equal(a, b);
    assert_true(strcmp(a, c) != 0);

    /* Every line is one JSON object with the required event keys. */
    fs_e2e_lines l;
    fs_e2e_split_lines(a, &l);
    assert_int_equal(l.n, 300);
    for (size_t i = 0; i < l.n; i++) {
        char *id = fs_e2e_field(l.v[i], "customer_id");
        char *ts = fs_e2e_field(l.v[i], "ts");
        char *ev = fs_e2e_field(l.v[i], "event");
        if (!id || !ts || !ev || id[0] != '"' || ev[0] != '"' ||
            strspn(ts, "0123456789") != strlen(ts))
            print_error("line %zu is not an event: %s\n", i + 1, l.v[i]);
        assert_true(id && id[0] == '"' && strlen(id) > 2);
        assert_true(ev && ev[0] == '"' && strlen(ev) > 2);
        assert_true(ts && *ts && strspn(ts, "0123456789") == strlen(ts));
        free(id);
        free(ts);
        free(ev);
    }
    fs_e2e_lines_free(&l);

    /* msgpack: deterministic too, and replay accepts all of it. */
    fs_e2e_run r1, r2;
    FS_E2E_EXEC(&r1, NULL, 0, "generate", "--events", "300", "--customers", "40", "--seed", "7",
                "--format", "msgpack");
    FS_E2E_EXEC(&r2, NULL, 0, "generate", "--events", "300", "--customers", "40", "--seed", "7",
                "--format", "msgpack");
    assert_status(&r1, 0);
    assert_int_equal(r1.out_len, r2.out_len);
    assert_memory_equal(r1.out, r2.out, r1.out_len);
    char *mp_path = fs_e2e_write_file(".msgpack", r1.out, r1.out_len);
    char *cfg_path = fs_e2e_write_text(".yaml", good_cfg);
    fs_e2e_run rep;
    FS_E2E_EXEC(&rep, NULL, 0, "replay", "--quiet", "--config", cfg_path, "--input", mp_path);
    assert_status(&rep, 0);
    assert_contains(rep.err, "events=300 ", "replay summary");
    assert_contains(rep.err, "rejected=0 ", "replay summary");
    fs_e2e_run_free(&rep);

    /* The same events in JSON and MessagePack replay to the same records. */
    char *json_path = fs_e2e_write_text(".jsonl", a);
    char *from_json = fs_e2e_replay_file_at(good_cfg, json_path, 2, __FILE__, __LINE__);
    char *from_mp = fs_e2e_replay_file_at(good_cfg, mp_path, 2, __FILE__, __LINE__);
    assert_string_equal(from_json, from_mp);
    free(from_json);
    free(from_mp);
    free(json_path);

    fs_e2e_run_free(&r1);
    fs_e2e_run_free(&r2);
    free(mp_path);
    free(cfg_path);
    free(a);
    free(b);
    free(c);
}

static void test_generate_output_file(void **state)
{
    (void)state;
    char *want = generate("3", "json");
    char *path = fs_e2e_write_text(".jsonl", "");
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "generate", "--events", "300", "--customers", "40", "--seed", "3",
                "--format", "json", "--output", path);
    assert_status(&r, 0);
    assert_string_equal(r.out, "");
    fs_e2e_run_free(&r);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t want_len = strlen(want);
    char *buf = calloc(1, want_len + 64);
    size_t got = fread(buf, 1, want_len + 63, f);
    fclose(f);
    assert_int_equal(got, want_len);
    assert_memory_equal(buf, want, got);
    free(buf);
    free(path);
    free(want);
}

/* generate refuses a run whose event times would leave |ts| <= 2^53 - 1
 * (README "Event time range"): near INT64_MAX they used to wrap to negative
 * times. The last valid times are still written. */
static void test_generate_ts_range(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"9223372036854775000", "0"}, /* the case */
        {"9007199254740992", "0"},    /* 2^53: one past the range */
        {"-9007199254740992", "0"},   /* one below */
        {"9007199254740991", "0"},    /* in range, but 3 events at 1/s go past it */
        {"-9007199254740991", "1"},   /* in range, disorder moves it below */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fs_e2e_run r;
        FS_E2E_EXEC(&r, NULL, 0, "generate", "--events", "3", "--customers", "2", "--rate", "1",
                    "--format", "json", "--start-ts", bad[i][0], "--disorder", bad[i][1]);
        assert_status(&r, 2);
        assert_string_equal(r.out, "");
        assert_contains(r.err, "valid range", "stderr");
        fs_e2e_run_free(&r);
    }
    /* The last run that fits: 3 events 1 s apart ending at 2^53 - 1. */
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "generate", "--events", "3", "--customers", "2", "--rate", "1",
                "--format", "json", "--start-ts", "9007199254738991");
    assert_status(&r, 0);
    assert_contains(r.out, "\"ts\":9007199254738991", "first record");
    assert_contains(r.out, "\"ts\":9007199254740991", "last record");
    fs_e2e_run_free(&r);
    FS_E2E_EXEC(&r, NULL, 0, "generate", "--events", "3", "--customers", "2", "--rate", "1",
                "--format", "json", "--start-ts", "-9007199254740990", "--disorder", "1");
    assert_status(&r, 0);
    fs_e2e_run_free(&r);
}

/* replay --output F --input F used to truncate F before reading it (0
 * events, exit 0, the input gone). Refused with exit 2, F untouched, also
 * when the two paths differ but name the same file: "dir/./F" and a hard
 * link. A different output file still works. */
static void test_replay_output_is_input(void **state)
{
    (void)state;
    char *in = fs_e2e_jsonl(some_events, N_SOME);
    char *in_path = fs_e2e_write_text(".jsonl", in);
    char *cfg_path = fs_e2e_write_text(".yaml", good_cfg);
    const char *slash = strrchr(in_path, '/');
    assert_non_null(slash);
    char dotted[4096], linked[4096];
    snprintf(dotted, sizeof dotted, "%.*s/./%s", (int)(slash - in_path), in_path, slash + 1);
    snprintf(linked, sizeof linked, "%s.link.jsonl", in_path);
    unlink(linked);
    assert_int_equal(link(in_path, linked), 0);
    const char *outs[] = {in_path, dotted, linked};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        fs_e2e_run r;
        FS_E2E_EXEC(&r, NULL, 0, "replay", "--quiet", "--config", cfg_path, "--input", in_path,
                    "--output", outs[i]);
        assert_status(&r, 2);
        assert_contains(r.err, "is the input file", "stderr");
        assert_string_equal(r.out, "");
        fs_e2e_run_free(&r);
        size_t len;
        char *now = fs_e2e_read_file(in_path, &len);
        assert_int_equal(len, strlen(in));
        assert_memory_equal(now, in, len);
        free(now);
    }
    /* The input named through the link, the output the original: refused too. */
    fs_e2e_run r;
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--quiet", "--config", cfg_path, "--input", linked,
                "--output", in_path);
    assert_status(&r, 2);
    fs_e2e_run_free(&r);

    char out_path[4096];
    snprintf(out_path, sizeof out_path, "%s.out.jsonl", in_path);
    FS_E2E_EXEC(&r, NULL, 0, "replay", "--quiet", "--config", cfg_path, "--input", in_path,
                "--output", out_path);
    assert_status(&r, 0);
    assert_contains(r.err, "events=5 ", "replay summary");
    fs_e2e_run_free(&r);
    unlink(out_path);
    unlink(linked);
    free(in);
    free(in_path);
    free(cfg_path);
}

/* The records of a closed window leave the process as the window closes,
 * not when 64 KB of records have piled up in a stdio buffer: a replay that
 * dies later (out of memory, SIGKILL) has written them (issue 13 item 15).
 * The replay reads a pipe the test keeps open: enough events to publish a
 * batch, the last ones closing window T0. The T0 record must then come
 * out on stdout while the replay still waits for input; the test kills it
 * after. (Before the fix the record sat in the buffer until the end.) The
 * deadline only bounds how long a failing run takes. */
static void test_replay_flushes_closed_windows(void **state)
{
    (void)state;
    char *cfg_path = fs_e2e_write_text(".yaml", good_cfg);
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execl(fs_e2e_bin(), "funnelstream", "replay", "--quiet", "--threads", "2", "--config",
              cfg_path, "--input", "-", "--format", "json", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    /* c1 a0 in window T0, then 3 batches' worth (FS_BATCH_MSGS = 8192) at
     * T0+2M on: the watermark passes T0's end. */
    size_t cap = 64 << 20, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    n += (size_t)snprintf(buf + n, cap - n,
                          "{\"customer_id\":\"c1\",\"ts\":%lld,\"event\":\"a0\"}\n",
                          FS_E2E_T0 + 1000);
    for (int i = 0; i < 3 * 8192; i++)
        n += (size_t)snprintf(buf + n, cap - n,
                              "{\"customer_id\":\"d%d\",\"ts\":%lld,\"event\":\"a0\"}\n", i,
                              FS_E2E_T0 + 120000 + i);
    for (size_t off = 0; off < n;) {
        ssize_t w = write(in[1], buf + off, n - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    /* stdin stays open: the replay is mid-stream. Read until T0's record. */
    char want[96];
    snprintf(want, sizeof want, "{\"kind\":\"flow\",\"funnel\":\"f\",\"window_start\":%lld,",
             FS_E2E_T0);
    size_t got = 0;
    bool found = false;
    while (!found) {
        struct pollfd p = {out[0], POLLIN, 0};
        int rc = poll(&p, 1, 60000);
        if (rc <= 0) {
            print_error("no record of window T0 on stdout while the replay runs; got %zu bytes\n",
                        got);
            break;
        }
        ssize_t r = read(out[0], buf + got, cap - got - 1);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        found = strstr(buf, want) != NULL;
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    close(in[1]);
    close(out[0]);
    free(buf);
    free(cfg_path);
    assert_true(found);
    assert_true(WIFSIGNALED(status)); /* it was still running: nothing flushed at exit */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_unknown_command_and_flags),
        cmocka_unit_test(test_missing_required_options),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_bounds),
        cmocka_unit_test(test_run_bad_kafka_property),
        cmocka_unit_test(test_config_file_missing),
        cmocka_unit_test(test_input_missing),
        cmocka_unit_test(test_stdin_equals_file_and_output_file_equals_stdout),
        cmocka_unit_test(test_msgpack_equals_json_and_threads_agree),
        cmocka_unit_test(test_damaged_file_equals_damaged_stdin),
        cmocka_unit_test(test_generate_deterministic),
        cmocka_unit_test(test_generate_output_file),
        cmocka_unit_test(test_generate_ts_range),
        cmocka_unit_test(test_replay_output_is_input),
        cmocka_unit_test(test_replay_flushes_closed_windows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
